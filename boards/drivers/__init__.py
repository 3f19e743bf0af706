# Hardware drivers shared by the boards. Each takes its machine objects
# (PWM, ADC, Pin, UART, SPI) by injection, so host tests plug in fakes.
