require ["variables","fileinto"];
if header :matches "from" "*@*" { set "d" "${2}"; fileinto "${d}"; }
