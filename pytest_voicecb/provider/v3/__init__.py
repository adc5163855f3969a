"""API 3.0 (service ``vms``, version ``2020-09-02``): ``SendTtsVoice`` and ``SendCodeVoice``, TC3-HMAC-SHA256."""
