package main

import (
	"strings"

	"github.com/spf13/pflag"
)

type pflagFlag = pflag.Flag

func envName(flag string) string {
	return "PODNET_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}
