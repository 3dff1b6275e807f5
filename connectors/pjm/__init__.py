"""PJM connector: Data Miner 2 feeds (feeds.py), pure parsers (parse.py), the live client
(client.py) and the simulator of its native responses (simulate.py)."""
