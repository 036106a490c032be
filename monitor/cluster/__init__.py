"""The pure decisions of several instances sharing one database: members, placement, quorum."""
