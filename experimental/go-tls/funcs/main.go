// gofuncs BINARY FUNC...: for each Go function, "FUNC ENTRY_VADDR END_VADDR ENTRY_FILE_OFFSET",
// read from the binary's function table (.gopclntab, or .data.rel.ro.gopclntab in PIE builds).
// Needs no symbol table, so it works on binaries built with -ldflags="-s -w". Standard library
// only.
package main

import (
	"debug/elf"
	"debug/gosym"
	"fmt"
	"os"
)

func main() {
	f, err := elf.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var pcln []byte
	for _, name := range []string{".gopclntab", ".data.rel.ro.gopclntab"} {
		if s := f.Section(name); s != nil {
			pcln, err = s.Data()
			break
		}
	}
	text := f.Section(".text")
	if pcln == nil || err != nil || text == nil {
		fmt.Fprintln(os.Stderr, "no Go function table in", os.Args[1])
		os.Exit(1)
	}
	table, err := gosym.NewTable(nil, gosym.NewLineTable(pcln, text.Addr))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fileOffset := func(vaddr uint64) uint64 {
		for _, p := range f.Progs {
			if p.Type == elf.PT_LOAD && vaddr >= p.Vaddr && vaddr < p.Vaddr+p.Filesz {
				return vaddr - p.Vaddr + p.Off
			}
		}
		return 0
	}
	status := 0
	for _, name := range os.Args[2:] {
		fn := table.LookupFunc(name)
		if fn == nil {
			fmt.Fprintln(os.Stderr, name, "not found")
			status = 1
			continue
		}
		fmt.Printf("%s 0x%x 0x%x 0x%x\n", name, fn.Entry, fn.End, fileOffset(fn.Entry))
	}
	os.Exit(status)
}
