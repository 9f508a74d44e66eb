"""The library as DJ software reads it: rekordbox XML, Traktor NML and Serato's tags."""
