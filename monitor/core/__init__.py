"""Values every layer shares: typed config fields, notices, words, times, rendering."""
