"""Storage on flash: atomic CRC'd snapshots, the CRC'd journal, the
file-system helpers and the storage adapter the core is given."""
