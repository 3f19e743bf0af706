# Raspberry Pi Pico W (RP2040 + CYW43439) station board: pin map and HAL in board.py.
