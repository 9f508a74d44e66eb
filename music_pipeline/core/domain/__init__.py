"""What a track is: identity, names, keys, paths, errors and statuses, selection and dedup rules."""
