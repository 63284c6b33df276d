"""The edge agent: runs on a Raspberry Pi at a door or a row of desks."""
