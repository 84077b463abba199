//! The redirect between the container interface and the tap: an ingress qdisc on each and a
//! u32 match-all filter whose mirred action redirects every frame to the other's egress
//! (`tc filter add dev A parent ffff: protocol all u32 match u32 0 0 action mirred egress
//! redirect dev B`). This kernel has no matchall or flower classifier; u32 is everywhere.
//! Each mirred action carries a cookie naming its owner (see `tap::Owner::cookie`), so exactly
//! one container's filters can be found and removed.

use super::nl::{Nl, NlResult};
use netlink_packet_route::tc::{
    TcAction, TcActionAttribute, TcActionMirrorOption, TcActionOption, TcActionType, TcAttribute,
    TcFilterU32Option, TcHandle, TcMessage, TcMirror, TcMirrorActionType, TcOption, TcU32Key,
    TcU32Selector, TcU32SelectorFlags,
};
use netlink_packet_route::RouteNetlinkMessage;

/// ETH_P_ALL in network byte order, as `tcm_info`'s low half wants it.
const PROTO_ALL: u32 = (libc::ETH_P_ALL as u16).to_be() as u32;
/// `ffff:` — the ingress qdisc's handle and its filters' parent.
const INGRESS_HANDLE: TcHandle = TcHandle {
    major: 0xffff,
    minor: 0,
};

/// Adds an ingress qdisc to `index`. `Ok(false)`: it was already there.
pub fn add_ingress(nl: &mut Nl, index: u32) -> NlResult<bool> {
    let mut m = TcMessage::with_index(index as i32);
    m.header.parent = TcHandle::INGRESS;
    m.header.handle = INGRESS_HANDLE;
    m.attributes.push(TcAttribute::Kind("ingress".into()));
    match nl.create(
        RouteNetlinkMessage::NewQueueDiscipline(m),
        "add an ingress qdisc",
    ) {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Some(libc::EEXIST) => Ok(false),
        Err(e) => Err(e),
    }
}

pub fn del_ingress(nl: &mut Nl, index: u32) -> NlResult<()> {
    let mut m = TcMessage::with_index(index as i32);
    m.header.parent = TcHandle::INGRESS;
    m.header.handle = INGRESS_HANDLE;
    nl.ack(
        RouteNetlinkMessage::DelQueueDiscipline(m),
        "delete an ingress qdisc",
    )
}

/// Redirects everything arriving on `from` to the egress of `to`.
pub fn add_redirect(nl: &mut Nl, from: u32, to: u32, prio: u16, cookie: &[u8]) -> NlResult<()> {
    let mut m = TcMessage::with_index(from as i32);
    m.header.parent = INGRESS_HANDLE;
    m.header.info = ((prio as u32) << 16) | PROTO_ALL;
    let mut sel = TcU32Selector::default();
    sel.flags = TcU32SelectorFlags::Terminal;
    sel.nkeys = 1;
    sel.keys = vec![TcU32Key::default()];
    let mut mirred = TcMirror::default();
    mirred.generic.action = TcActionType::Stolen;
    mirred.eaction = TcMirrorActionType::EgressRedir;
    mirred.ifindex = to;
    let mut act = TcAction::default();
    act.tab = 1;
    act.attributes = vec![
        TcActionAttribute::Kind("mirred".into()),
        TcActionAttribute::Options(vec![TcActionOption::Mirror(TcActionMirrorOption::Parms(
            mirred,
        ))]),
        TcActionAttribute::Cookie(cookie.to_vec()),
    ];
    m.attributes.push(TcAttribute::Kind("u32".into()));
    m.attributes.push(TcAttribute::Options(vec![
        TcOption::U32(TcFilterU32Option::Selector(sel)),
        TcOption::U32(TcFilterU32Option::Action(vec![act])),
    ]));
    nl.create(
        RouteNetlinkMessage::NewTrafficFilter(m),
        "add a tc redirect filter",
    )
}

/// A filter on an ingress qdisc, as far as the redirect cares.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub prio: u16,
    pub kind: String,
    /// Cookies of its actions.
    pub cookies: Vec<Vec<u8>>,
    /// Redirect targets of its mirred actions.
    pub targets: Vec<u32>,
}

/// The filters of the ingress qdisc of `index` (none when it has no ingress qdisc).
pub fn filters(nl: &mut Nl, index: u32) -> NlResult<Vec<Filter>> {
    let mut m = TcMessage::with_index(index as i32);
    m.header.parent = INGRESS_HANDLE;
    let msgs = match nl.dump(RouteNetlinkMessage::GetTrafficFilter(m), "list tc filters") {
        Ok(m) => m,
        Err(e) if matches!(e.errno(), Some(libc::EINVAL) | Some(libc::ENOENT)) => {
            return Ok(Vec::new())
        }
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for msg in msgs {
        let RouteNetlinkMessage::NewTrafficFilter(f) = msg else {
            continue;
        };
        if f.header.index != index as i32 {
            continue;
        }
        let mut filter = Filter {
            prio: (f.header.info >> 16) as u16,
            kind: String::new(),
            cookies: Vec::new(),
            targets: Vec::new(),
        };
        for a in f.attributes {
            match a {
                TcAttribute::Kind(k) => filter.kind = k,
                TcAttribute::Options(opts) => {
                    for o in opts {
                        if let TcOption::U32(TcFilterU32Option::Action(acts)) = o {
                            collect_actions(&acts, &mut filter);
                        }
                    }
                }
                _ => {}
            }
        }
        out.push(filter);
    }
    Ok(out)
}

fn collect_actions(acts: &[TcAction], f: &mut Filter) {
    for act in acts {
        for a in &act.attributes {
            match a {
                TcActionAttribute::Cookie(c) => f.cookies.push(c.clone()),
                TcActionAttribute::Options(opts) => {
                    for o in opts {
                        if let TcActionOption::Mirror(TcActionMirrorOption::Parms(p)) = o {
                            f.targets.push(p.ifindex);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// Deletes every filter at `prio` on the ingress qdisc of `index`.
pub fn del_prio(nl: &mut Nl, index: u32, prio: u16) -> NlResult<()> {
    let mut m = TcMessage::with_index(index as i32);
    m.header.parent = INGRESS_HANDLE;
    m.header.info = ((prio as u32) << 16) | PROTO_ALL;
    match nl.ack(
        RouteNetlinkMessage::DelTrafficFilter(m),
        "delete a tc redirect filter",
    ) {
        Err(e) if e.errno() == Some(libc::ENOENT) => Ok(()),
        r => r,
    }
}
