"""The legacy send API: ``/v5/tlsvoicesvr/sendvoiceprompt``, ``sendcvoice``, ``sendtvoice``, sha256 ``sig``."""
