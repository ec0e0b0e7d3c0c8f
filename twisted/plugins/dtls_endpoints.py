# Declarations only: the dtls: endpoint string parsers for
# twisted.internet.endpoints.serverFromString / clientFromString.
from twisted_dtls.endpoints import DTLSClientParser, DTLSServerParser

dtlsServerEndpointParser = DTLSServerParser()
dtlsClientEndpointParser = DTLSClientParser()
