require ["fileinto", "imap4flags", "variables", "relational", "comparator-i;ascii-numeric", "envelope", "subaddress", "body", "date", "index", "vacation", "copy", "mailbox", "spamtestplus", "encoded-character", "reject"];
if header :contains "subject" "${hex:41}pple" { fileinto :create "Apples"; stop; }
elsif address :domain :is ["from", "sender"] "example.org" { addflag "\\Seen"; keep; }
elsif allof (exists "x-spam", not size :under 10K) { discard; }
elsif envelope :user "to" "me" { redirect :copy "x@example.org"; }
elsif header :value "ge" :comparator "i;ascii-numeric" "x-n" "5" { set :lower :upperfirst "v" "${1}A"; }
elsif body :content "text" :contains "hi" { vacation :days 3 :subject "Away" text:
I am away.
..dot
.
; }
elsif date :index 1 :last :zone "+0200" "date" "year" "2024" { keep :flags ["a"]; }
elsif spamtest :percent :value "gt" :comparator "i;ascii-numeric" "50" { fileinto "Junk"; }
elsif string :matches "${unicode:263a} x" "* ?" { reject "no"; }
else { if mailboxexists "X" { fileinto :flags "b" "X"; } }
