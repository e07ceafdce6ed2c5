module passport/gofuncs

go 1.19
