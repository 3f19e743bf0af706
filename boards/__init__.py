# Board definitions: pin maps and drivers, one package per board.
