"""One module per platform. Each connector knows its platform and nothing about brands or Slack."""
