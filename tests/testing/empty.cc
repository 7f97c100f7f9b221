// Keeps the testing library non-empty before its first helper lands.
