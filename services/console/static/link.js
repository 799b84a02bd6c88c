// A sign-in link carries its code after "#": browsers never send that part to a server,
// so it is in no access log. Move it into the form, wipe it from the address bar, post.
(function () {
  var code = window.location.hash.replace(/^#/, "");
  if (!code) { return; }
  history.replaceState(null, "", window.location.pathname);
  var form = document.getElementById("link-form");
  document.getElementById("code").value = decodeURIComponent(code);
  form.submit();
})();
