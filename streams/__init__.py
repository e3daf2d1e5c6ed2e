"""Video sources (file, RTSP, HTTP MJPEG/HLS, device) with a reader thread, drop policy and reconnect."""
