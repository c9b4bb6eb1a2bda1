//go:build !race

package app

// raceBuild: see multi_instance_race_test.go.
const raceBuild = false
