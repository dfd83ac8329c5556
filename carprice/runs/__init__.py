"""Running the platform's jobs outside the daemon: instance, launcher, simulated clock, day reports."""
