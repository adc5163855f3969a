"""A relay that receives the provider's voice callbacks and forwards them to customers, with retries."""
