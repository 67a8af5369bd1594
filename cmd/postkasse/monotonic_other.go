//go:build !linux

package main

import "errors"

func monotonicUsec() (int64, error) { return 0, errors.New("no monotonic clock reading") }
