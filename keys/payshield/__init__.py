"""The payShield host-command protocol: frames and command fields as plain functions
on bytes (no I/O), shared by the `payshield` backend and `forecourt sim hsm`."""
