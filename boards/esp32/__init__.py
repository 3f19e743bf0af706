# ESP32 (ESP32-WROOM-32, no PSRAM) station board: pin map and HAL in board.py.
