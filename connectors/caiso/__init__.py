"""CAISO connector: OASIS (prices, ancillary services, load) and Today's Outlook (fuel mix,
demand). feeds.py names the feeds; oasis.py and outlook.py read the two services' payloads;
prices.py and parse.py turn them into records (PARSERS); client.py fetches them live and
simulate.py renders the simulator's data in the same formats."""
