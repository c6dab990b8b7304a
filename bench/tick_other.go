//go:build !(linux && (amd64 || arm64))

package main

import "time"

func newTicker(period time.Duration) ticker { return newSleepTicker(period) }
