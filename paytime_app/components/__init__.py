"""Pure render functions shared by pages."""
