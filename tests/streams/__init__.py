"""Tests of the `streams` package (and the loopback MJPEG camera other tests reuse)."""
