"""Pure codecs and validators of outside standards (FHIR, GS1, QR): no storage, no network."""
