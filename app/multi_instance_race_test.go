//go:build race

package app

// raceBuild makes the binary the multi-instance test builds use -race too,
// so it links from the packages this test run already compiled.
const raceBuild = true
