# The host simulator board: a virtual EV, meter and card reader.
