# Raspberry Pi Pico W under CircuitPython: board.py (parts over board/digitalio/pwmio/analogio/busio), boot.py, code.py.
