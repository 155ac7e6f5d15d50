// Starts GraphiQL on the page's #graphiql element, sending queries and mutations to the
// endpoint named in its data-endpoint attribute over HTTP and subscriptions to the same path
// over WebSocket. No inline script: the page's policy allows scripts from this server only.
(function () {
  "use strict";
  var root = document.getElementById("graphiql");
  var endpoint = new URL(root.dataset.endpoint, window.location.href);
  var socket = new URL(endpoint.href);
  socket.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";
  var fetcher = GraphiQL.createFetcher({
    url: endpoint.href,
    subscriptionUrl: socket.href,
  });
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      // A template to paste a token into: most operations need one.
      defaultHeaders: '{\n  "Authorization": "Bearer "\n}',
      defaultEditorToolsVisibility: "headers",
      defaultQuery: "# Sign in with the login mutation, put the accessToken in the\n" +
        "# Authorization header below, then run:\n{\n  me {\n    id\n    username\n  }\n}\n",
    })
  );
})();
