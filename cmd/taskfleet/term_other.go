//go:build !unix

package main

import "os"

// fileWidth returns 0: the width is unknown ($COLUMNS still applies).
func fileWidth(*os.File) int { return 0 }
