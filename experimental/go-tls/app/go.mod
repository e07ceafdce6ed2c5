module passport/gotlsapp

go 1.19
