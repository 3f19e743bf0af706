"""The OCPP-J wire format: frames and the CALL slot, payload validation,
the streaming JSON reader and the piecewise JSON writer."""
