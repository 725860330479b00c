"""Sensor data over Ethernet: packet formats of camera (RTP/JPEG) and lidar (VLP-16) streams."""
