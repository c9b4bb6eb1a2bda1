// Command gatehouse serves internal dashboards to the groups allowed to see
// them. See the README for the commands.
package main

import (
	"os"

	"gatehouse/app/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
