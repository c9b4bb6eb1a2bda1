// Command gatehouse serves internal dashboards to the groups allowed to see
// them. See the README for the commands.
package main

import (
	"os"

	"gatehouse/app"
)

func main() {
	os.Exit(app.Main(os.Args[1:]))
}
