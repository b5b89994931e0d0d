"""One module per message class and function; `table.py` says which answers what."""
