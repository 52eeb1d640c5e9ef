"""`make bench`: cold start, warm latency, round trips, scaling and memory against their floors."""
