"""Pure core: frame records, validation, pairing, buffering, geometry.  Never imports rclpy."""
