if anyof (header :is "a" "b", not exists "c") { discard; } /* c */ # x
