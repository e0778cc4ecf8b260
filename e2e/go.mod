module runwayjobs.dev/e2e

go 1.25.0

require runwayjobs.dev/shared v0.0.0

replace runwayjobs.dev/shared => ../shared
