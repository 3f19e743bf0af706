# OCPP 1.6-J charging station core. Modules are imported individually;
# this package file stays empty so importing it costs no heap.
