"""Version-neutral forwarding for every HTTP front end: route, pick, upstream, finish."""
