"""The Modbus stage: which registers to read, reading them, and decoding their words.

Channels are read in as few requests as the gateway allows: neighbours are merged into blocks
of at most `max_read` registers across gaps of at most `max_gap` (`plan`); the fast group is
read every cycle, the slow one less often (`schedule`). What a block returns is kept in a
register image per unit and function, and every channel is decoded from that image (`codec`).
A block that fails is bisected and its bad registers quarantined (`poll`); all traffic of a hub
goes through one serialized client that reconnects with back-off (`transport`).
"""
