# Scenarios that run unchanged under CPython and in the MicroPython VM.
