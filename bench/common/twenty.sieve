# Twenty rules of the kind people keep: lists to folders, senders to folders, flags, a
# forward of one kind of mail, a vacation-free office. None matches the bench's messages but
# the last, so each message is tested against all of them.
require ["fileinto", "mailbox", "imap4flags", "variables", "envelope", "subaddress", "relational", "comparator-i;ascii-numeric", "copy"];
if header :contains "list-id" "rust-users" { fileinto :create "Lists/Rust"; stop; }
if header :contains "list-id" "debian-devel" { fileinto :create "Lists/Debian"; stop; }
if header :matches "list-id" "*<*.lists.example.com>" { fileinto :create "Lists/${2}"; stop; }
if address :domain :is "from" ["school.example", "kindergarten.example"] { fileinto :create "School"; }
if address :is "from" "boss@work.example" { addflag "\\Flagged"; }
if header :contains "subject" ["invoice", "receipt", "Rechnung"] { fileinto :create "Invoices"; }
if envelope :detail "to" "shopping" { fileinto :create "Shopping"; stop; }
if header :contains "x-spam-flag" "YES" { fileinto :create "Junk"; stop; }
if size :over 20M { addflag "big"; }
if header :is "precedence" ["bulk", "list"] { fileinto :create "Bulk"; }
if address :localpart :is "from" "noreply" { addflag "\\Seen"; }
if header :contains "x-mailer" "BulkMailer" { fileinto :create "Bulk"; }
if anyof (header :contains "subject" "newsletter", header :contains "from" "news@") { fileinto :create "News"; }
if allof (address :domain "from" "bank.example", header :contains "subject" "statement") { fileinto :create "Bank"; }
if header :value "ge" :comparator "i;ascii-numeric" "x-priority" "5" { addflag "low"; }
if header :contains "list-unsubscribe" "mailto:" { fileinto :create "Bulk"; }
if header :contains "from" "github.com" { fileinto :create "GitHub"; stop; }
if exists "x-github-reason" { fileinto :create "GitHub"; stop; }
if header :contains "subject" "[JIRA]" { fileinto :create "Jira"; stop; }
if header :contains "subject" "bench message" { keep; }
