"""Who hears what, and in which words: audiences, notice plans, ops texts."""
