"""How an alert reads in each channel: figures formatted for a trader (prices at the market's
tick, amounts in coins and contracts, currency on every figure), error text summarised to one
line, and the email (Jinja2 templates), Slack, Discord and JSON renderings of one message."""
